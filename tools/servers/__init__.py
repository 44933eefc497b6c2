"""Control of the local servers the demo and the tests use (nginx, moto), all bound to 127.0.0.1."""
