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
    import boto3

    ec2 = boto3.client("ec2", region_name=region, endpoint_url=endpoint_url)
    elb = boto3.client("elbv2", region_name=region, endpoint_url=endpoint_url)
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


def import_placeholder_certificate(endpoint_url: str, region: str) -> str:
    """A self-signed certificate in ACM to be a listener's default before certplane binds its own (a real ALB
    cannot have an HTTPS listener without one)."""
    import datetime as dt

    import boto3

    from providers.core import certificates as x509util
    from providers.core import keys

    key = keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256"))
    cert = x509util.sign_certificate(
        x509util.CertificateTemplate(dns_names=("placeholder.invalid",), validity_days=365),
        subject_public_key=key.public_key(), signing_key=key, issuer=None, now=dt.datetime.now(dt.timezone.utc))
    acm = boto3.client("acm", region_name=region, endpoint_url=endpoint_url)
    return str(acm.import_certificate(Certificate=x509util.to_pem(cert).encode(),
                                      PrivateKey=keys.private_key_to_pem(key).encode())["CertificateArn"])


def main(argv: list[str] | None = None) -> int:
    import json

    parser = argparse.ArgumentParser(prog="python -m tools.servers.moto")
    parser.add_argument("action", choices=["serve"])
    parser.add_argument("port", nargs="?", type=int, default=5000)
    parser.add_argument("--listener", metavar="REGION", help="also create an HTTPS listener; print its ARNs as JSON")
    args = parser.parse_args(argv)
    server = MotoServer(args.port)
    print(f"moto: {server.start()}", flush=True)
    if args.listener:
        for key, value in DUMMY_ENV.items():
            os.environ.setdefault(key, value)
        placeholder = import_placeholder_certificate(server.endpoint_url, args.listener)
        print(json.dumps(create_https_listener(server.endpoint_url, args.listener, placeholder)), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
