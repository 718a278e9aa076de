"""What every function worker needs before its handler: imported once in the fork server that starts the
workers of one `waguard serve` (see workers.py), so that each worker forks with it instead of paying it again.

Only libraries and one boto3 session, never the function's code: the handler module is imported in the
worker, after its environment is set, as Lambda imports it at a cold start. The session is built under an
empty environment and reads nothing from it yet (botocore reads the region, credentials and endpoint from
the environment when a client is created, which happens in the worker); what it keeps are the service
models the functions use, parsed once here (about a quarter of a second per worker otherwise).
"""

from __future__ import annotations

import os

import aws_lambda_powertools.event_handler
import aws_lambda_powertools.event_handler.openapi.params
import aws_lambda_powertools.logging
import aws_lambda_powertools.metrics
import aws_lambda_powertools.utilities.batch  # noqa: F401
import boto3
import pydantic.fields
import pydantic.functional_validators
import pydantic.json_schema
import pydantic.types  # noqa: F401

SERVICES = ("dynamodb", "sqs", "kms", "events", "secretsmanager", "s3")


def _session() -> boto3.session.Session:
    saved = dict(os.environ)
    os.environ.clear()
    try:
        session = boto3.session.Session()
        for service in SERVICES:
            session._session.get_service_model(service)  # parsed and kept by the session's loader
            session._loader.load_service_model(service, "endpoint-rule-set-1")  # read by each new client
        session._loader.load_service_model("dynamodb", "resources-1")  # boto3.resource("dynamodb")
        session._session.get_component("endpoint_resolver")
        return session
    finally:
        os.environ.update(saved)


boto3.DEFAULT_SESSION = _session()
