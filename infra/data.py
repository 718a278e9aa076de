"""The DynamoDB tables declared in `constants.TABLE_SPECS` and the backup plan of the restorable ones.

Every table: `pk`/`sk` strings, on-demand, CMK encryption, TTL on `expires_at`, deletion protection,
retained on stack deletion, with the indexes its declaration names. PITR and AWS Backup on every table
declared restorable, i.e. all but `keys`: the keys table holds the
per-contact data keys, and erasure deletes a contact's key (crypto-shredding); a restore of that table
would bring shredded keys back, so it has neither (docs/decisions.md).
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_backup as backup
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra import nag
from infra.config import WaguardConfig
from lambdas.shared import constants as c


class Data(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, cfg: WaguardConfig, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self._build_tables(key)
        self._build_backup(cfg, key)

    def _build_tables(self, key: kms.IKey) -> None:
        """The tables of `constants.TABLE_SPECS`; the non-restorable (keys) without PITR (see the
        acknowledgement)."""
        self.tables: dict[str, dynamodb.Table] = {}
        for spec in c.TABLE_SPECS:
            table = dynamodb.Table(
                self,
                spec.name.title(),
                partition_key=dynamodb.Attribute(name=c.PK, type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name=c.SK, type=dynamodb.AttributeType.STRING),
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
                encryption_key=key,
                time_to_live_attribute=c.TTL_ATTRIBUTE,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=spec.restorable,
                ),
                deletion_protection=True,
                removal_policy=RemovalPolicy.RETAIN,
            )
            for index, attribute in spec.indexes:
                table.add_global_secondary_index(
                    index_name=index,
                    partition_key=dynamodb.Attribute(name=attribute, type=dynamodb.AttributeType.STRING),
                    projection_type=dynamodb.ProjectionType.ALL,
                )
            self.tables[spec.name] = table

        keys_reason = (
            "The keys table holds the per-contact data keys that erasure deletes (crypto-shredding); "
            "point-in-time recovery or a backup would let a restore bring a shredded key back and make "
            "erased personal data readable again, so this one table is deliberately not restorable."
        )
        nag.acknowledge(
            self.tables[c.TABLE_KEYS],
            keys_reason,
            "AwsSolutions-DDB3",
            "NIST.800.53.R5-DynamoDBPITREnabled",
            "HIPAA.Security-DynamoDBPITREnabled",
            "NIST.800.53.R5-DynamoDBInBackupPlan",
            "HIPAA.Security-DynamoDBInBackupPlan",
        )

    def _build_backup(self, cfg: WaguardConfig, key: kms.IKey) -> None:
        """A daily AWS Backup plan of the data tables (not the keys table) into a CMK-encrypted vault."""
        self.backup_vault = backup.BackupVault(
            self,
            "BackupVault",
            encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.backup_plan = backup.BackupPlan(
            self,
            "BackupPlan",
            backup_vault=self.backup_vault,
            backup_plan_rules=[
                backup.BackupPlanRule(
                    rule_name="Daily",
                    schedule_expression=events.Schedule.cron(hour="3", minute="0"),
                    delete_after=Duration.days(cfg.backup_retention_days),
                )
            ],
        )
        backed_up = [t for name, t in self.tables.items() if c.TABLE_SPEC[name].restorable]
        self.backup_role = iam.Role(
            self,
            "BackupRole",
            assumed_by=iam.ServicePrincipal("backup.amazonaws.com"),
            description="AWS Backup: back up the waguard data tables (not the keys table)",
        )
        self.backup_policy = iam.ManagedPolicy(
            self,
            "BackupPolicy",
            description="AWS Backup of the waguard data tables, least privilege",
            roles=[self.backup_role],
            statements=[
                iam.PolicyStatement(
                    sid="BackupTables",
                    actions=[
                        "dynamodb:DescribeTable",
                        "dynamodb:CreateBackup",
                        "dynamodb:StartAwsBackupJob",
                        "dynamodb:ListTagsOfResource",
                    ],
                    resources=[t.table_arn for t in backed_up],
                ),
                iam.PolicyStatement(
                    sid="ManageTableBackups",
                    actions=["dynamodb:DescribeBackup", "dynamodb:DeleteBackup"],
                    resources=[f"{t.table_arn}/backup/*" for t in backed_up],
                ),
                iam.PolicyStatement(
                    sid="CopyIntoVault",
                    actions=["backup:DescribeBackupVault", "backup:CopyIntoBackupVault"],
                    resources=[self.backup_vault.backup_vault_arn],
                ),
                iam.PolicyStatement(
                    sid="UseDataKey",
                    actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                    resources=[key.key_arn],
                ),
                iam.PolicyStatement(
                    sid="GrantDataKeyToAwsResources",
                    actions=["kms:CreateGrant"],
                    resources=[key.key_arn],
                    conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
                ),
            ],
        )
        self.backup_plan.add_selection(
            "DataTables",
            resources=[backup.BackupResource.from_dynamo_db_table(t) for t in backed_up],
            role=self.backup_role,
            disable_default_backup_policy=True,
        )

    def finish(self) -> None:
        nag.acknowledge_wildcards(
            self.backup_policy,
            {
                "ManageTableBackups": (
                    "DynamoDB names each backup with a generated id under its table's ARN; the wildcard is "
                    "limited to the backups of the five backed-up tables."
                )
            },
        )
