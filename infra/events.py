"""Business events (contract: Conversations): the stack's EventBridge bus and its optional forwarding.

- The bus: a customer-managed KMS key (it covers `detail`; `source`, `detail-type` and `resources` carry
  no personal data by construction), a dead-letter queue (KMS, SSL-only, alarmed) for events the bus
  cannot deliver, and a resource policy that denies `events:PutEvents` to every principal except the
  stack's functions. Outputs `EventBusName` and `EventBusArn`: subscribe a Lambda function, a Step
  Functions state machine or an HTTPS endpoint with a rule of your own.
- The forwarding rule (always there, metadata `waguard:forward`): every event with source `waguard`. When
  `cdk.json` names `eventsEndpoint` (HTTPS), its target is an API destination with a rate limit, through
  a Connection whose API key (header `X-Waguard-Events-Key`) is a Secrets Manager secret generated at
  create time (never a literal in the template), with a retry policy and the dead-letter queue. Locally
  `waguard serve --forward-events URL` materializes the same bus and rule and targets a queue that its
  forwarder drains into URL, as the API destination would.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, RemovalPolicy, SecretValue, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import nag
from infra.config import WaguardConfig
from lambdas.shared import constants as c

FORWARD_METADATA = "waguard:forward"
DLQ_RETENTION = Duration.days(14)


class Events(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, cfg: WaguardConfig, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self._cfg = cfg
        self.dlq = sqs.Queue(
            self,
            "EventsDlq",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=DLQ_RETENTION,
        )
        nag.acknowledge(
            self.dlq,
            "This queue is itself the dead-letter queue of the event bus (its DeadLetterConfig) and of the "
            "forwarding rule's target; the rule recognizes dead-letter queues only by SQS redrive policies.",
            "AwsSolutions-SQS3",
        )
        self.bus = events.EventBus(
            self,
            "Bus",
            description="waguard business events (message.received, message.status, consent.changed, "
            "contact.erased); detail encrypted with the stack's key",
            kms_key=key,
            dead_letter_queue=self.dlq,
        )
        # EventBridge writes dead letters into the KMS-encrypted queue with this account's key.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowEventBridgeToWriteDeadLetters",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            )
        )
        self.key_secret: secretsmanager.Secret | None = None
        self.forward_rule = self._build_forwarding(key)
        CfnOutput(self, "EventBusName", value=self.bus.event_bus_name, export_name=None)
        CfnOutput(self, "EventBusArn", value=self.bus.event_bus_arn)

    def _build_forwarding(self, key: kms.IKey) -> events.Rule:
        rule = events.Rule(
            self,
            "ForwardRule",
            event_bus=self.bus,
            description="Every waguard event, to the business's endpoint when one is configured",
            event_pattern=events.EventPattern(source=[c.EVENT_SOURCE]),
        )
        cfn = rule.node.default_child
        assert isinstance(cfn, events.CfnRule)
        cfn.add_metadata(FORWARD_METADATA, {"retryAttempts": self._cfg.events_retry_attempts})
        endpoint = self._cfg.events_endpoint
        if not endpoint:
            return rule
        self.key_secret = secretsmanager.Secret(
            self,
            "ForwardKey",
            description="waguard: the key sent as X-Waguard-Events-Key with every forwarded event",
            encryption_key=key,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                exclude_punctuation=True, password_length=48
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )
        nag.acknowledge(
            self.key_secret,
            "The events key is shared with the business's own endpoint, which must be updated in the same "
            "step, so it is rotated by hand together with that endpoint rather than by a rotation Lambda.",
            "AwsSolutions-SMG4",
            "NIST.800.53.R5-SecretsManagerRotationEnabled",
            "HIPAA.Security-SecretsManagerRotationEnabled",
        )
        connection = events.Connection(
            self,
            "ForwardConnection",
            description="waguard events key header",
            authorization=events.Authorization.api_key(
                c.EVENTS_HEADER, SecretValue.secrets_manager(self.key_secret.secret_arn)
            ),
        )
        destination = events.ApiDestination(
            self,
            "ForwardDestination",
            connection=connection,
            endpoint=endpoint,
            http_method=events.HttpMethod.POST,
            rate_limit_per_second=self._cfg.events_rate_per_second,
            description="The business's HTTPS endpoint for waguard events",
        )
        # The invoke permission as a customer-managed policy (the target's default grant would be inline);
        # the target gets the role as an immutable reference so CDK adds nothing to it.
        role = iam.Role(
            self,
            "ForwardRole",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
            description="waguard: EventBridge invokes the business's events endpoint",
        )
        iam.ManagedPolicy(
            self,
            "ForwardPolicy",
            description="waguard: invoke the events API destination, nothing else",
            statements=[
                iam.PolicyStatement(
                    actions=["events:InvokeApiDestination"], resources=[destination.api_destination_arn]
                )
            ],
            roles=[role],
        )
        rule.add_target(
            targets.ApiDestination(
                destination,
                event_role=iam.Role.from_role_arn(self, "ForwardRoleRef", role.role_arn, mutable=False),
                dead_letter_queue=self.dlq,
                retry_attempts=self._cfg.events_retry_attempts,
                max_event_age=Duration.hours(24),
            )
        )
        return rule

    def allow_put(self, roles: list[iam.IRole]) -> None:
        """Only the stack's functions may put events on the bus (identity grant + resource-policy deny)."""
        for role in roles:
            self.bus.grant_put_events_to(role)
        self.bus.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyWaguardFunctionsPutEvents",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["events:PutEvents"],
                resources=[self.bus.event_bus_arn],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": [r.role_arn for r in roles]}},
            )
        )
