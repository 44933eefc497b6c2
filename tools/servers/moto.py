"""Run moto's AWS emulator on 127.0.0.1 (never 0.0.0.0) and build the ELBv2 fixture the demo and tests use.

    python -m tools.servers.moto serve [PORT]   # foreground; prints the endpoint
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

DUMMY_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
             "AWS_DEFAULT_REGION": "us-east-1"}
DEMO_PROFILE = "certplane-demo"


def write_credentials(path: str | Path, profile: str = DEMO_PROFILE) -> Path:
    """A shared-credentials file with moto's dummy keys under `profile` (0600): what the local stack's AWS
    targets name (`profile`, `credentials_file`), so they reach moto in any shell without touching the
    operator's own AWS credentials or environment."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = f"[{profile}]\naws_access_key_id = certplane-demo\naws_secret_access_key = certplane-demo\n"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(target, 0o600)
    return target


def _client(service: str, region: str, endpoint_url: str) -> Any:
    """A client for moto with its dummy keys, whatever the caller's environment holds (never real AWS: the
    endpoint is moto's)."""
    import boto3

    return boto3.client(service, region_name=region, endpoint_url=endpoint_url, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


class MotoServer:
    """moto in a thread of this process. `port=0` picks a free port; `endpoint_url` is known after start()."""

    def __init__(self, port: int = 0) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.endpoint_url = ""

    def start(self, timeout: float = 10.0) -> str:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1).read()
                return self.endpoint_url
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto did not answer on {self.endpoint_url} within {timeout:g} s") from None
                time.sleep(0.05)

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST"),
                               timeout=5).read()

    def stop(self) -> None:
        self._server.stop()


def create_https_listener(endpoint_url: str, region: str, certificate_arn: str | None = None) -> dict[str, Any]:
    """VPC, two subnets, a security group, an ALB and an HTTPS listener (moto accepts one with no certificate).
    Returns the ARNs."""
    ec2 = _client("ec2", region, endpoint_url)
    elb = _client("elbv2", region, endpoint_url)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{region}{az}")
               ["Subnet"]["SubnetId"] for i, az in enumerate("ab")]
    sg = ec2.create_security_group(GroupName="certplane-alb", Description="certplane test", VpcId=vpc)["GroupId"]
    lb = elb.create_load_balancer(Name="certplane-alb", Subnets=subnets, SecurityGroups=[sg], Scheme="internal",
                                  Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
    tg = elb.create_target_group(Name="certplane-tg", Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0][
        "TargetGroupArn"]
    args: dict[str, Any] = {"LoadBalancerArn": lb, "Protocol": "HTTPS", "Port": 443,
                            "SslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
                            "DefaultActions": [{"Type": "forward", "TargetGroupArn": tg}]}
    if certificate_arn:
        args["Certificates"] = [{"CertificateArn": certificate_arn}]
    listener = elb.create_listener(**args)["Listeners"][0]["ListenerArn"]
    return {"vpc_id": vpc, "load_balancer_arn": lb, "target_group_arn": tg, "listener_arn": listener}


def create_tls_listener(endpoint_url: str, region: str, certificate_arn: str, *, name: str = "certplane-nlb",
                        port: int = 443) -> dict[str, Any]:
    """A network load balancer with a TLS listener on `port` (serving `certificate_arn`, as a real one must) and
    a plain TCP listener on 80. Returns the ARNs."""
    ec2 = _client("ec2", region, endpoint_url)
    elb = _client("elbv2", region, endpoint_url)
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.0.0/24", AvailabilityZone=f"{region}a")["Subnet"]["SubnetId"]
    lb = elb.create_load_balancer(Name=name, Subnets=[subnet], Scheme="internal", Type="network")[
        "LoadBalancers"][0]["LoadBalancerArn"]
    tg = elb.create_target_group(Name=f"{name}-tg", Protocol="TCP", Port=443, VpcId=vpc)["TargetGroups"][0][
        "TargetGroupArn"]
    forward = [{"Type": "forward", "TargetGroupArn": tg}]
    tls = elb.create_listener(LoadBalancerArn=lb, Protocol="TLS", Port=port, SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06",
                              Certificates=[{"CertificateArn": certificate_arn}], DefaultActions=forward)
    tcp = elb.create_listener(LoadBalancerArn=lb, Protocol="TCP", Port=80, DefaultActions=forward)
    return {"load_balancer_arn": lb, "listener_arn": tls["Listeners"][0]["ListenerArn"],
            "tcp_listener_arn": tcp["Listeners"][0]["ListenerArn"]}


def create_distribution(endpoint_url: str, *, aliases: tuple[str, ...] = (), certificate_arn: str | None = None,
                        reference: str = "certplane") -> str:
    """A CloudFront distribution in front of an HTTPS origin, serving `certificate_arn` (ACM, us-east-1) or
    CloudFront's default certificate. Returns its id."""
    viewer: dict[str, Any] = ({"ACMCertificateArn": certificate_arn, "SSLSupportMethod": "sni-only",
                               "MinimumProtocolVersion": "TLSv1.2_2021", "CloudFrontDefaultCertificate": False}
                              if certificate_arn else {"CloudFrontDefaultCertificate": True})
    cf = _client("cloudfront", "us-east-1", endpoint_url)
    config = {
        "CallerReference": reference, "Comment": "certplane test distribution", "Enabled": True,
        "Aliases": {"Quantity": len(aliases), "Items": list(aliases)},
        "Origins": {"Quantity": 1, "Items": [{"Id": "origin", "DomainName": "origin.example.test",
                                              "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443,
                                                                     "OriginProtocolPolicy": "https-only"}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "origin", "ViewerProtocolPolicy": "redirect-to-https",
                                 "MinTTL": 0, "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}}},
        "ViewerCertificate": viewer,
    }
    return str(cf.create_distribution(DistributionConfig=config)["Distribution"]["Id"])


def import_placeholder_certificate(endpoint_url: str, region: str,
                                   names: tuple[str, ...] = ("placeholder.invalid",)) -> str:
    """A self-signed certificate in ACM to be a listener's default (or a distribution's viewer certificate)
    before certplane binds its own: a real ALB cannot have an HTTPS listener without one, nor a distribution an
    alias its certificate does not cover."""
    import datetime as dt

    from providers.core import certificates as x509util
    from providers.core import keys

    key = keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256"))
    cert = x509util.sign_certificate(
        x509util.CertificateTemplate(dns_names=names, validity_days=365),
        subject_public_key=key.public_key(), signing_key=key, issuer=None, now=dt.datetime.now(dt.timezone.utc))
    acm = _client("acm", region, endpoint_url)
    return str(acm.import_certificate(Certificate=x509util.to_pem(cert).encode(),
                                      PrivateKey=keys.private_key_to_pem(key).encode())["CertificateArn"])


ROOT_CA_TEMPLATE = "arn:aws:acm-pca:::template/RootCACertificate/V1"


def create_private_ca(endpoint_url: str, region: str, common_name: str = "certplane Test PCA", *,
                      parent: tuple[Any, Any] | None = None, days: int = 3650) -> dict[str, str]:
    """An ACTIVE private CA in moto's AWS Private CA (RSA 2048, SHA256WITHRSA), made as on AWS: the CA's CSR,
    its certificate, `import_certificate_authority_certificate`. A root issues its own certificate (the
    RootCACertificate/V1 template; moto makes it valid for 365 days whatever `days` says); with `parent`, a
    (certificate, private key) pair of a CA outside AWS, a subordinate whose certificate that CA signs (path
    length 0, valid `days`). Returns the CA's `arn`, `certificate_pem` and `chain_pem` (the parent's, or "")."""
    import datetime as dt

    from cryptography import x509

    from providers.core import certificates as x509util

    pca = _client("acm-pca", region, endpoint_url)
    subject = {"CommonName": common_name, "Organization": "certplane tests"}
    arn = str(pca.create_certificate_authority(
        CertificateAuthorityConfiguration={"KeyAlgorithm": "RSA_2048", "SigningAlgorithm": "SHA256WITHRSA",
                                           "Subject": subject},
        CertificateAuthorityType="SUBORDINATE" if parent else "ROOT")["CertificateAuthorityArn"])
    csr_pem = str(pca.get_certificate_authority_csr(CertificateAuthorityArn=arn)["Csr"])
    if parent is None:
        issued = pca.issue_certificate(CertificateAuthorityArn=arn, Csr=csr_pem.encode(), TemplateArn=ROOT_CA_TEMPLATE,
                                       SigningAlgorithm="SHA256WITHRSA", Validity={"Value": days, "Type": "DAYS"})
        cert_pem = str(pca.get_certificate(CertificateAuthorityArn=arn, CertificateArn=issued["CertificateArn"])
                       ["Certificate"])
        chain_pem = ""
    else:
        parent_cert, parent_key = parent
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        cert = x509util.sign_certificate(
            x509util.CertificateTemplate(common_name=common_name, organization=subject["Organization"], is_ca=True,
                                         path_length=0, validity_days=days),
            subject_public_key=csr.public_key(), signing_key=parent_key,  # type: ignore[arg-type]
            issuer=parent_cert, now=dt.datetime.now(dt.timezone.utc))
        cert_pem, chain_pem = x509util.to_pem(cert), x509util.to_pem(parent_cert)
    args: dict[str, Any] = {"CertificateAuthorityArn": arn, "Certificate": cert_pem.encode()}
    if chain_pem:
        args["CertificateChain"] = chain_pem.encode()
    pca.import_certificate_authority_certificate(**args)
    return {"arn": arn, "certificate_pem": cert_pem, "chain_pem": chain_pem}


def pca_revocations(endpoint_url: str, ca_arn: str) -> dict[str, str]:
    """What moto's private CA `ca_arn` recorded as revoked: {serial as RevokeCertificate was given it: reason},
    read from moto's model view (/moto-api/data.json; its API has no call that lists revocations)."""
    import json

    with urllib.request.urlopen(f"{endpoint_url}/moto-api/data.json", timeout=10) as response:
        data = json.load(response)
    for ca in data.get("acmpca", {}).get("CertificateAuthority", []):
        if ca.get("arn") == ca_arn:
            return {serial: str(entry.get("revocation_reason"))
                    for serial, entry in (ca.get("revoked_certificates") or {}).items()}
    raise LookupError(f"moto has no private CA {ca_arn}")


def ensure_demo_resources(endpoint_url: str, region: str, alias: str) -> dict[str, str]:
    """The demo's ALB (HTTPS listener with a placeholder default) and CloudFront distribution for `alias`, each
    created only when missing."""
    elb = _client("elbv2", region, endpoint_url)
    cf = _client("cloudfront", "us-east-1", endpoint_url)
    try:
        lb = elb.describe_load_balancers(Names=["certplane-alb"])["LoadBalancers"][0]["LoadBalancerArn"]
        listener = elb.describe_listeners(LoadBalancerArn=lb)["Listeners"][0]["ListenerArn"]
    except elb.exceptions.LoadBalancerNotFoundException:
        listener = create_https_listener(endpoint_url, region,
                                         import_placeholder_certificate(endpoint_url, region))["listener_arn"]
    items = cf.list_distributions()["DistributionList"].get("Items") or []
    found = [d["Id"] for d in items if alias in (d.get("Aliases") or {}).get("Items", [])]
    distribution = found[0] if found else create_distribution(
        endpoint_url, aliases=(alias,),
        certificate_arn=import_placeholder_certificate(endpoint_url, "us-east-1", (alias,)))
    return {"listener_arn": str(listener), "distribution_id": str(distribution)}


def main(argv: list[str] | None = None) -> int:
    import json

    parser = argparse.ArgumentParser(prog="python -m tools.servers.moto")
    parser.add_argument("action", choices=["serve"])
    parser.add_argument("port", nargs="?", type=int, default=5000)
    args = parser.parse_args(argv)
    server = MotoServer(args.port)
    print(f"moto: {server.start()}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
