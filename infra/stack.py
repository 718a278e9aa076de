"""WaguardStack: composes the capabilities; every resource is defined in its own construct module."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack, Tags
from aws_cdk import aws_events_targets as targets
from constructs import Construct

from infra.access import PersonnelAccess
from infra.api import Api
from infra.audit_trail import AuditTrail
from infra.audits import Audits
from infra.config import WaguardConfig
from infra.data import Data
from infra.events import Events
from infra.functions import Functions
from infra.keys import Keys
from infra.media import Media
from infra.monitoring import Monitoring
from infra.queues import Queues
from infra.secrets import Secrets
from lambdas.shared import constants as c


class WaguardStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, cfg: WaguardConfig, **kwargs: Any) -> None:
        super().__init__(
            scope,
            construct_id,
            description="waguard: privacy-first WhatsApp Business backend",
            **kwargs,
        )
        self.cfg = cfg
        Tags.of(self).add("project", c.SERVICE_NAME)

        self.keys = Keys(self, "Keys", cfg=cfg)
        self.data = Data(self, "Data", cfg=cfg, key=self.keys.data_key)
        self.queues = Queues(self, "Queues", cfg=cfg, key=self.keys.data_key)
        self.secrets = Secrets(self, "Secret", key=self.keys.data_key)
        self.events = Events(self, "Events", cfg=cfg, key=self.keys.data_key)
        self.trail = AuditTrail(
            self,
            "AuditTrail",
            cfg=cfg,
            trail_key=self.keys.trail_key,
            logs_key=self.keys.logs_key,
            tables=self.data.tables,
        )
        self.media = Media(
            self, "Media", cfg=cfg, key=self.keys.data_key, access_log_bucket=self.trail.access_log_bucket
        )
        self.functions = Functions(
            self,
            "Functions",
            cfg=cfg,
            logs_key=self.keys.logs_key,
            data_key=self.keys.data_key,
            tables=self.data.tables,
            queues={"inbound": self.queues.inbound, "send": self.queues.send, "media": self.media.queue},
            secrets=dict(self.secrets.by_name),
            bus=self.events.bus,
            media_bucket=self.media.bucket,
        )
        self.events.allow_put([fn.function.role for fn in self.functions.publishers if fn.function.role])
        processor = self.functions[c.FN_PROCESSOR]
        sender = self.functions[c.FN_SENDER]
        self.queues.subscribe(
            self.queues.inbound,
            processor.function,
            batch_size=cfg.processor_batch_size,
            max_concurrency=max(2, cfg.function(c.FN_PROCESSOR).reserved_concurrency),
        )
        self.queues.subscribe(
            self.queues.send,
            sender.function,
            batch_size=cfg.sender_batch_size,
            max_concurrency=cfg.sender_max_concurrency,
        )
        self.queues.subscribe(
            self.media.queue,
            self.functions[c.FN_MEDIA_WORKER].function,
            batch_size=1,  # one download per invocation: the function's memory bounds one stream
            max_concurrency=max(2, cfg.function(c.FN_MEDIA_WORKER).reserved_concurrency),
        )
        self.api = Api(
            self,
            "Api",
            cfg=cfg,
            logs_key=self.keys.logs_key,
            functions={name: fn.function for name, fn in self.functions.functions.items()},
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            cfg=cfg,
            key=self.keys.data_key,
            dead_letter_queues={
                **self.queues.dead_letter_queues,
                "events": self.events.dlq,
                "media": self.media.dlq,
            },
            functions={name: fn.function for name, fn in self.functions.functions.items()},
            api=self.api.api,
        )
        self.access = PersonnelAccess(
            self,
            "Access",
            api=self.api,
            trail_bucket=self.trail.bucket,
            log_groups=[
                self.trail.log_group,
                self.api.access_logs,
                *(fn.log_group for fn in self.functions.functions.values()),
            ],
            trail_key=self.keys.trail_key,
            logs_key=self.keys.logs_key,
        )
        self.audits = self._audits()
        # Policies are complete: acknowledge the documented wildcards statement by statement.
        self.data.finish()
        self.functions.finish()
        self.access.finish()

    def _audits(self) -> Audits:
        """The self-audit: the auditor's read-only view of every resource it checks; with cdk.json
        `awsConfigRules`, the matching AWS Config managed rules too."""
        if self.cfg.aws_config_rules:
            from infra.config_rules import ConfigRules

            ConfigRules(self, "ConfigRules")
        audits = Audits(
            self,
            "Audits",
            auditor=self.functions[c.FN_AUDITOR],
            table_arns=[t.table_arn for t in self.data.tables.values()],
            key_arns=[k.key_arn for k in (self.keys.data_key, self.keys.logs_key, self.keys.trail_key)],
            queues=[
                self.queues.inbound,
                self.queues.send,
                *self.queues.dead_letter_queues.values(),
                self.media.queue,
                self.media.dlq,
                self.events.dlq,
            ],
            buckets=[self.trail.bucket, self.trail.access_log_bucket, self.media.bucket],
            trail_arn=self.trail.trail.attr_arn,
            bus_arn=self.events.bus.event_bus_arn,
            function_arns=[fn.function.function_arn for fn in self.functions.functions.values()],
        )
        # The template registry is read when the stack is deployed too, not only on its schedule.
        audits.after_deploy.add_target(
            targets.LambdaFunction(self.functions[c.FN_TEMPLATES].function, retry_attempts=2)
        )
        return audits
