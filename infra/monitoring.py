"""Alarms on what loses or blocks messages, published to one KMS-encrypted, SSL-only SNS topic.

- each DLQ not empty (a message that could not be processed or sent),
- each function's errors,
- API 5xx,
- Graph API auth errors (`GraphAuthErrors`: the access token is wrong or expired; nothing will send),
- Graph API throttling (`GraphThrottled`: the send rate budget is too high for the account tier),
- the self-audit's findings (`AuditFindings`: a deployed resource differs from the template),
- deliveries for a business number not configured (`UnknownBusinessNumber`: answered and dropped; a
  number is missing from cdk.json `phoneNumbers`, or the app is subscribed to a WABA it should not be).
- data-subject requests open past their due date (`PrivacyRequestsOverdue`, the gauge the contacts-api's
  privacy check puts every `PRIVACY_CHECK_MINUTES`: the law's deadline passed; answer or extend them).
The runtime metrics are Powertools EMF metrics (namespace `Waguard`, dimension `service=waguard`).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import WaguardConfig
from lambdas.shared import constants as c

GRAPH_AUTH_ERRORS = c.METRIC_GRAPH_AUTH_ERRORS
GRAPH_THROTTLED = c.METRIC_GRAPH_THROTTLED
PERIOD = Duration.minutes(5)
GTE = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
PRIVACY_CHECK_MINUTES = 15  # how often contacts-api counts overdue requests (infra/functions.py NEEDS)


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cfg: WaguardConfig,
        key: kms.IKey,
        dead_letter_queues: Mapping[str, sqs.IQueue],
        functions: Mapping[str, lambda_.IFunction],
        api: apigw.RestApi,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name="waguard alarms",
            master_key=key,
            enforce_ssl=True,
        )
        stack = Stack.of(self)
        alarm_arns = f"arn:{Aws.PARTITION}:cloudwatch:{stack.region}:{stack.account}:alarm:*"
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisAccountsCloudWatchAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": alarm_arns},
                },
            )
        )
        if cfg.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(cfg.alarm_email))
        self.alarms: dict[str, cloudwatch.Alarm] = {}

        for name, dlq in dead_letter_queues.items():
            self._alarm(
                f"{name.title()}DlqNotEmpty",
                dlq.metric_approximate_number_of_messages_visible(
                    period=Duration.minutes(1), statistic="Maximum"
                ),
                threshold=0,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                description=f"The {name} dead-letter queue holds messages: they were not processed; redrive "
                "after fixing the cause.",
            )
        for name, fn in functions.items():
            self._alarm(
                "".join(p.title() for p in name.split("-")) + "Errors",
                fn.metric_errors(period=PERIOD, statistic="Sum"),
                threshold=1,
                description=f"The {name} function reported errors.",
            )
        self._alarm(
            "Api5xx",
            api.metric_server_error(period=PERIOD, statistic="Sum"),
            threshold=1,
            description="The API answered 5xx.",
        )
        self._build_metric_alarms(cfg)

    @staticmethod
    def _metric(name: str, period: Duration = PERIOD, statistic: str = "Sum") -> cloudwatch.Metric:
        """One of waguard's own metrics (namespace Waguard, dimension service only)."""
        return cloudwatch.Metric(
            namespace=c.METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map={"service": c.SERVICE_NAME},
            period=period,
            statistic=statistic,
        )

    def _build_metric_alarms(self, cfg: WaguardConfig) -> None:
        """The alarms on waguard's own metrics: the Graph API's answers, deliveries for other numbers, the
        self-audit's findings and overdue data-subject requests."""
        self._alarm(
            GRAPH_AUTH_ERRORS,
            self._metric(GRAPH_AUTH_ERRORS),
            threshold=1,
            description="The Graph API refused the access token: sends fail until the secret is fixed.",
        )
        self._alarm(
            GRAPH_THROTTLED,
            self._metric(GRAPH_THROTTLED),
            threshold=cfg.graph_throttled_alarm_threshold,
            description="The Graph API throttles sends: lower sendRatePerSecond or raise the account tier.",
        )
        self._alarm(
            c.METRIC_UNKNOWN_BUSINESS_NUMBER,
            self._metric(c.METRIC_UNKNOWN_BUSINESS_NUMBER),
            threshold=1,
            description="Webhook deliveries for a business number this deployment does not serve were "
            "dropped: add it to phoneNumbers in cdk.json, or unsubscribe the app from its account.",
        )
        self._alarm(
            c.METRIC_AUDIT_FINDINGS,
            # alarms look back a day at most
            self._metric(
                c.METRIC_AUDIT_FINDINGS, Duration.hours(min(cfg.audit_schedule_hours, 24)), "Maximum"
            ),
            threshold=1,
            description="The self-audit found the deployed stack differs from its template (audit.finding "
            "events, GET /audit/findings): fix the drift or redeploy.",
        )
        self._alarm(
            c.METRIC_PRIVACY_OVERDUE,
            self._metric(c.METRIC_PRIVACY_OVERDUE, Duration.minutes(PRIVACY_CHECK_MINUTES), "Maximum"),
            threshold=1,
            description="Data-subject requests are open past their legal due date (GDPR Art. 12(3), CCPA "
            "45 days): complete, extend or reject them (GET /privacy/requests?status=overdue).",
        )

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        description: str,
        comparison: cloudwatch.ComparisonOperator = GTE,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        action = cw_actions.SnsAction(self.topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        self.alarms[construct_id] = alarm
        return alarm
