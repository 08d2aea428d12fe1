"""The CRM API token in Secrets Manager: created empty for the operator to fill, or imported."""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnOutput, RemovalPolicy, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct


class CrmTokenSecret(Construct):
    """The secret the handlers read (through Powertools Parameters, cached) to call the CRM."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        imported_arn: str | None,
        kms_key_arn: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._kms_key_arn = kms_key_arn
        if imported_arn is not None:
            self.secret = secretsmanager.Secret.from_secret_complete_arn(
                self, "Imported", imported_arn
            )
            return
        secret = secretsmanager.Secret(
            self,
            "Secret",
            description="auth0-sync: the CRM API bearer token (set it after the first deploy)",
            # Retained once created; removed if the stack's creation rolls back, so the
            # retried first deploy does not trip over an orphan (RetainExceptOnCreate).
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        # The L2 construct generates a random value by default; a random string is no CRM
        # token, so the secret is created empty and the handlers fail loudly until it is set.
        cfn_secret = secret.node.default_child
        assert isinstance(cfn_secret, secretsmanager.CfnSecret)
        cfn_secret.add_property_deletion_override("GenerateSecretString")
        Validations.of(secret).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-SMG4",
                reason="The CRM vendor issues this token; Secrets Manager cannot rotate it. "
                "Rotate it in the CRM and `put-secret-value` the new one.",
            )
        )
        self.secret = secret
        CfnOutput(
            scope,
            "SetCrmToken",
            description="Store the CRM API token (read from a file, so it stays out of "
            "your shell history)",
            value=f"aws secretsmanager put-secret-value --secret-id {secret.secret_arn} "
            "--secret-string file://crm-token.txt",
        )

    @property
    def secret_arn(self) -> str:
        return self.secret.secret_arn

    def grant_read(self, grantee: iam.IGrantable) -> None:
        """secretsmanager:GetSecretValue on this secret (no DescribeSecret), plus its CMK."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"], resources=[self.secret.secret_arn]
            )
        )
        if self._kms_key_arn is not None:
            via_secrets_manager = f"secretsmanager.{Stack.of(self).region}.amazonaws.com"
            grantee.grant_principal.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["kms:Decrypt"],
                    resources=[self._kms_key_arn],
                    conditions={"StringEquals": {"kms:ViaService": via_secrets_manager}},
                )
            )
