"""Optional AWS Config managed rules (cdk.json `awsConfigRules`, off by default) matching the self-audit's
checks, for accounts that run AWS Config (a recorder must exist; rules cost per evaluation).

They check generic settings account-wide or on this stack's resources (change-triggered rules are scoped
to the stack's tag `project=waguard`); the self-audit (infra/audits.py) remains what compares the live
stack with its own template.
"""

from __future__ import annotations

from aws_cdk import aws_config as config
from constructs import Construct

from lambdas.shared import constants as c

R = config.ManagedRuleIdentifiers
# (construct id, managed rule, change-triggered: scoped to the stack's tag; else periodic, account-wide)
RULES: tuple[tuple[str, str, bool], ...] = (
    ("DynamodbPitrEnabled", R.DYNAMODB_PITR_ENABLED, True),
    ("DynamodbTableEncryptedKms", R.DYNAMODB_TABLE_ENCRYPTED_KMS, True),
    ("CmkBackingKeyRotationEnabled", R.CMK_BACKING_KEY_ROTATION_ENABLED, False),
    ("KmsCmkNotScheduledForDeletion", R.KMS_CMK_NOT_SCHEDULED_FOR_DELETION, True),
    ("S3BucketSslRequestsOnly", R.S3_BUCKET_SSL_REQUESTS_ONLY, True),
    ("S3BucketVersioningEnabled", R.S3_BUCKET_VERSIONING_ENABLED, True),
    ("S3BucketLevelPublicAccessProhibited", R.S3_BUCKET_LEVEL_PUBLIC_ACCESS_PROHIBITED, True),
    ("CloudTrailEnabled", R.CLOUD_TRAIL_ENABLED, False),
    ("CloudTrailLogFileValidationEnabled", R.CLOUD_TRAIL_LOG_FILE_VALIDATION_ENABLED, False),
    ("LambdaFunctionSettingsCheck", R.LAMBDA_FUNCTION_SETTINGS_CHECK, True),
)
LAMBDA_RUNTIME = "python3.13"


class ConfigRules(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.rules: dict[str, config.ManagedRule] = {}
        for ident, identifier, tagged in RULES:
            params = {"runtime": LAMBDA_RUNTIME} if identifier == R.LAMBDA_FUNCTION_SETTINGS_CHECK else None
            self.rules[ident] = config.ManagedRule(
                self,
                ident,
                identifier=identifier,
                input_parameters=params,
                rule_scope=config.RuleScope.from_tag("project", c.SERVICE_NAME) if tagged else None,
                description=f"waguard: {identifier} (matches a check of the self-audit)",
            )
