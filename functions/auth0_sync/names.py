"""Names shared by the stack, the handlers, local mode and the tests: defined here once.

Nothing else in the project spells a table name, a key, an environment variable or an
event type as a string literal.
"""

from __future__ import annotations

from enum import StrEnum

SERVICE_NAME = "auth0-sync"
METRICS_NAMESPACE = "Auth0Sync"

# EventBridge: the partner event source names start with this; the rules match it as a prefix.
PARTNER_SOURCE_PREFIX = "aws.partner/auth0.com"
# A stale Auth0 docs example spells types with this prefix; we accept and strip it.
LEGACY_TYPE_PREFIX = "com.auth0."


class EventType(StrEnum):
    """The Auth0 event types this project handles."""

    USER_CREATED = "user.created"
    USER_UPDATED = "user.updated"
    USER_DELETED = "user.deleted"


class OrgEventType(StrEnum):
    """The Auth0 organization event types this project handles (issue 24): an organization
    is a CRM company, a member a contact's membership of it, with its roles."""

    ORG_CREATED = "organization.created"
    ORG_UPDATED = "organization.updated"
    ORG_DELETED = "organization.deleted"
    MEMBER_ADDED = "organization.member.added"
    MEMBER_DELETED = "organization.member.deleted"
    ROLE_ASSIGNED = "organization.member.role.assigned"
    ROLE_DELETED = "organization.member.role.deleted"


# CDK context key: `false` leaves out the organization rules and functions (tenants
# without Auth0 Organizations); on by default.
CONTEXT_ORGANIZATIONS = "organizations"


class CrmType(StrEnum):
    """The destinations the sync can write to (env CRM_TYPE, CDK context `crmType`)."""

    REST = "rest"  # the generic REST contacts contract (docs/contracts)
    HUBSPOT = "hubspot"
    SALESFORCE = "salesforce"


class Env(StrEnum):
    """Every environment variable a function or the CLI reads."""

    CRM_TYPE = "CRM_TYPE"
    CRM_BASE_URL = "CRM_BASE_URL"
    # Local only; in AWS the token comes from the secret named by CRM_TOKEN_SECRET_ARN.
    CRM_API_TOKEN = "CRM_API_TOKEN"
    CRM_TOKEN_SECRET_ARN = "CRM_TOKEN_SECRET_ARN"
    CRM_TIMEOUT_SECONDS = "CRM_TIMEOUT_SECONDS"
    FIELD_MAPPING = "FIELD_MAPPING"
    FIELD_MAPPING_FILE = "FIELD_MAPPING_FILE"
    CONTACT_ID_PATH = "CRM_CONTACT_ID_PATH"
    MISSING_CONTACT_POLICY = "MISSING_CONTACT_POLICY"
    DELETE_POLICY = "DELETE_POLICY"
    # skip | create: a user without an email (passwordless SMS, username-only connections).
    NO_EMAIL_POLICY = "NO_EMAIL_POLICY"
    # false | true: whether an unverified email may claim a contact it matches.
    CLAIM_UNVERIFIED_EMAIL = "CLAIM_UNVERIFIED_EMAIL"
    # deactivate | ignore: what a blocked user's contact shows.
    BLOCKED_POLICY = "BLOCKED_POLICY"
    # upsert | update_only: what the sync may do to the CRM's contacts (auth0_sync.modes).
    SYNC_MODE = "SYNC_MODE"
    # A count (250) or a share of the contacts (10%): the deactivations one bulk run may send.
    DEACTIVATION_LIMIT = "DEACTIVATION_LIMIT"
    # The live path's brake: at most this many deactivations per window of so many seconds.
    DEACTIVATION_WINDOW_LIMIT = "DEACTIVATION_WINDOW_LIMIT"
    DEACTIVATION_WINDOW_SECONDS = "DEACTIVATION_WINDOW_SECONDS"
    # keep | clear: what a mapped attribute absent from `data.object` does to the CRM field.
    ABSENT_FIELDS = "ABSENT_FIELDS"
    # Seconds one invocation may spend retrying the CRM, well below the function timeout.
    CRM_RETRY_BUDGET_SECONDS = "CRM_RETRY_BUDGET_SECONDS"
    STATE_TABLE = "SYNC_STATE_TABLE"
    # "false": the stack has no organization functions (CONTEXT_ORGANIZATIONS), so a user's
    # event does not look for memberships waiting for its contact.
    ORGANIZATIONS = "AUTH0_SYNC_ORGANIZATIONS"
    # Salesforce: "true" when the org has Contacts to Multiple Accounts enabled (memberships
    # are AccountContactRelations with Roles; else a contact's AccountId, no roles).
    SALESFORCE_MULTIPLE_ACCOUNTS = "SALESFORCE_CONTACTS_TO_MULTIPLE_ACCOUNTS"
    DLQ_URL = "DLQ_URL"
    # Powertools' own variables, set by the stack.
    POWERTOOLS_SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
    POWERTOOLS_METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"
    # Stream health check (optional scheduled function).
    AUTH0_DOMAIN = "AUTH0_DOMAIN"
    AUTH0_CLIENT_ID = "AUTH0_CLIENT_ID"
    AUTH0_CLIENT_SECRET = "AUTH0_CLIENT_SECRET"
    AUTH0_MGMT_TOKEN = "AUTH0_MGMT_TOKEN"
    # A file holding the Management API token (kept out of the shell's history and env).
    AUTH0_MGMT_TOKEN_FILE = "AUTH0_MGMT_TOKEN_FILE"
    # `streams create --webhook`: the token Auth0 sends to the webhook (or --webhook-token-file).
    WEBHOOK_TOKEN = "AUTH0_SYNC_WEBHOOK_TOKEN"
    # The partner event source the stack's bus is associated with (stream health check).
    AUTH0_EVENT_SOURCE_NAME = "AUTH0_EVENT_SOURCE_NAME"
    # Where the CLI caches Management API tokens (the XDG base directory convention).
    XDG_CACHE_HOME = "XDG_CACHE_HOME"
    # The CDK app (app.py): "1" when `make deploy` runs it, "0" for `make synth`.
    AUTH0_SYNC_DEPLOY = "AUTH0_SYNC_DEPLOY"
    AUTH0_MGMT_SECRET_ARN = "AUTH0_MGMT_SECRET_ARN"
    AUTH0_STREAM_ID = "AUTH0_STREAM_ID"


# Resource names used by local mode (`auth0-sync local-aws`) and as defaults by the settings.
# In AWS the stack lets CloudFormation name them and passes the names in the environment.
DEFAULT_STATE_TABLE = "auth0-sync-state"
DEFAULT_DLQ_NAME = "auth0-sync-dlq"
DEFAULT_CRM_SECRET_NAME = "auth0-sync/crm-api-token"
# `process --topology buffered`: each routed type's local queue is this plus its construct id.
LOCAL_BUFFER_QUEUE_PREFIX = "auth0-sync-buffer-"
LOCAL_REGION = "us-east-1"
LOCAL_AWS_PORT = 4566
LOCAL_CRM_PORT = 8080

# Table keys.
STATE_TABLE_PK = "user_id"
# The state table's TTL attribute (epoch seconds): set on a deleted user's tombstone only, so
# DynamoDB forgets it once nothing can deliver that user's events any more; a live user's
# item never has it. docs/sync-rules.md ("Tombstones that age") gives the reasoning: longer
# than the DLQ's 14 days plus EventBridge's 24 h and Lambda's 6 h, with room for catch-up.
STATE_TTL_ATTRIBUTE = "expires_at"
TOMBSTONE_RETENTION_DAYS = 90

# DLQ message attributes written by the handlers for their own permanent failures.
DLQ_ATTR_ERROR_CLASS = "error_class"
DLQ_ATTR_REASON = "reason"
DLQ_ATTR_HANDLER = "handler"
DLQ_ATTR_ATTEMPTS = "attempts"
DLQ_ATTR_FIRST_FAILURE = "first_failure_at"
# Attributes EventBridge puts on rule-target delivery failures.
DLQ_ATTR_EB_ERROR_CODE = "ERROR_CODE"
DLQ_ATTR_EB_ERROR_MESSAGE = "ERROR_MESSAGE"

# Lambda asynchronous invocation: retries after the first attempt (Lambda's own maximum is 2).
ASYNC_RETRY_ATTEMPTS = 2
# The handlers' timeout: the CRM client retries within the invocation, so it leaves room for
# a few backed-off calls. The local runner gives each invocation the same budget.
FUNCTION_TIMEOUT_SECONDS = 30

# Reference CRM server (local mode): the bearer token it accepts unless told otherwise.
LOCAL_CRM_TOKEN = "local-crm-token"  # a loopback test server's default, not a secret


class Metric(StrEnum):
    """CloudWatch metric names (namespace METRICS_NAMESPACE), one per business outcome."""

    CONTACT_CREATED = "ContactCreated"
    CONTACT_LINKED = "ContactLinked"
    CONTACT_UPDATED = "ContactUpdated"
    CONTACT_DEACTIVATED = "ContactDeactivated"
    CONTACT_ANONYMIZED = "ContactAnonymized"
    CONTACT_REACTIVATED = "ContactReactivated"
    COMPANY_CREATED = "CompanyCreated"
    COMPANY_UPDATED = "CompanyUpdated"
    COMPANY_DEACTIVATED = "CompanyDeactivated"
    MEMBERSHIP_SET = "MembershipSet"
    MEMBERSHIP_REMOVED = "MembershipRemoved"
    # These three carry a `reason` dimension (METRIC_REASON_DIMENSION) with a SkipReason /
    # failure reason value.
    EVENT_SKIPPED = "EventSkipped"
    EVENT_DEAD_LETTERED = "EventDeadLettered"
    # A transient failure handed back for a retry (Lambda's, or the queue's redelivery).
    EVENT_RETRIED = "EventRetried"
    CRM_CALLS = "CrmCalls"
    # The CRM refused the credential in the CRM secret, also after reading it again.
    CRM_CREDENTIALS_REJECTED = "CrmCredentialsRejected"


METRIC_REASON_DIMENSION = "reason"
METRIC_SERVICE_DIMENSION = "service"


class SkipReason(StrEnum):
    """Why an event was skipped: counted, never an error."""

    UNCHANGED = "unchanged"  # mapped values equal what was last applied (login noise)
    STALE = "stale"  # older than the last change applied for this user
    DUPLICATE = "duplicate"  # same Auth0 event id already applied
    DELETED = "deleted"  # older than the user's tombstone: it belongs to a past life
    ACCOUNT_LINKED = "account_linked"  # the delete of a secondary linked into a primary
    TEST_EVENT = "test_event"  # a0purpose == "test"
    UNKNOWN_TYPE = "unknown_type"  # an event type we do not handle
    CONTACT_MISSING = "contact_missing"  # delete (or update with policy skip) found no contact
    NO_EMAIL = "no_email"  # a user without an email and no contact yet (NO_EMAIL_POLICY=skip)
    EMAIL_UNVERIFIED = "email_unverified"  # its unverified email is another contact's (unique CRM)
    DELETE_POLICY_NONE = "delete_policy_none"  # DELETE_POLICY=none: a delete touches no contact
    # SYNC_MODE=create_only: the contact already holds a value for each field the event changes.
    HELD_BY_CRM = "held_by_crm"
    # A membership whose contact or company does not exist yet: recorded, applied later.
    MEMBERSHIP_PENDING = "membership_pending"
    # An organization event for a destination without companies (HubSpot, Salesforce yet).
    ORGANIZATIONS_UNSUPPORTED = "organizations_unsupported"


class StreamMetric(StrEnum):
    """Metrics of the scheduled stream health check, dimensioned by service and stream id."""

    FAILED_DELIVERIES = "FailedDeliveries"
    STREAM_ENABLED = "StreamEnabled"
    # 1 when the partner event source is ACTIVE (and is the stream's): events reach the bus.
    EVENT_SOURCE_ACTIVE = "EventSourceActive"


METRIC_STREAM_DIMENSION = "stream"

# Auth0 disables a stream by itself after this many failed deliveries.
AUTH0_STREAM_MAX_CONSECUTIVE_FAILURES = 500
AUTH0_STREAM_MAX_TOTAL_FAILURES = 5000
# The health check warns, and the stack alarms, at this share of either limit.
STREAM_HEALTH_WARN_RATIO = 0.5
STREAM_HEALTH_INTERVAL_MINUTES = 5

# CDK context key choosing how events reach the handlers (auth0_sync.buffering.Topology):
# `direct` (the rule invokes the function) or `buffered` (through a queue per type).
CONTEXT_TOPOLOGY = "topology"

# CDK context key choosing the destination (a CrmType value).
CONTEXT_CRM_TYPE = "crmType"

# CDK context key naming the partner event source the stack associates a bus with.
CONTEXT_EVENT_SOURCE_NAME = "auth0EventSourceName"
# CDK context key: `true` creates that bus (associating the source), else it is imported.
CONTEXT_CREATE_EVENT_BUS = "createEventBus"

# EventBridge also records how often it tried the target before giving up (rule-target DLQ).
DLQ_ATTR_EB_RETRY_ATTEMPTS = "RETRY_ATTEMPTS"

# Outputs of the deployed stack that `auth0-sync dlq list/replay --stack NAME` reads.
STACK_OUTPUT_DLQ_URL = "DeadLetterQueueUrl"
STACK_OUTPUT_REPLAY_FUNCTIONS = "ReplayFunctions"  # "user.created=fn,user.updated=fn,..."


# Failure reasons that retrying can fix: the redrive replays these without a person.
# Everything else (invalid_event, ambiguous_match, crm_4xx, internal_error, ...) waits in
# the DLQ for someone to fix the cause. `crm_5xx` stands for any `crm_5..` (see
# auth0_sync.redrive.is_transient).
TRANSIENT_REASONS = frozenset(
    {
        "crm_408",
        "crm_429",
        "crm_5xx",
        "crm_timeout",
        "crm_unreachable",
        "crm_circuit_open",
        "crm_bad_answer",
        "crm_404",
        "crm_412",
        "write_unconfirmed",
        "crm_token_unavailable",
        # The CRM refused the credential in the secret, also after a fresh read: retried
        # once someone puts the current one there (the CrmCredentialsRejected alarm).
        "crm_credentials_rejected",
        "lease_held",
        "lease_lost",
        "claim_conflict",
        "state_unavailable",
        "dlq_unavailable",
        "email_conflict",
        "owned_by_other",
        "lambda_timeout",
        # Buffered topology: held behind an earlier event of its user that failed in the
        # same batch (auth0_sync.queue_batches).
        "earlier_event_pending",
        # Lambda dropped the event after its maximum event age (throttled, or retries
        # spread past it): nothing was wrong with the event.
        "event_age_exceeded",
        # Buffered topology: SQS moved the event from its queue to the DLQ after the queue's
        # maxReceiveCount receives ended without an answer (timed out, crashed).
        "receive_count_exceeded",
        # Salesforce error codes that heal by themselves (the daily API limit, a row lock).
        "salesforce_request_limit_exceeded",
        "salesforce_unable_to_lock_row",
        "salesforce_server_unavailable",
    }
)
# A delete held in the DLQ by the live path's deactivation brake: not transient (the redrive
# leaves it), a person releases it with `auth0-sync replay --allow-deactivations N`.
REASON_DEACTIVATION_LIMIT = "deactivation_limit"
# The state-table items counting the live path's deactivations, one per window.
DEACTIVATION_WINDOW_KEY_PREFIX = "#deactivations#"
# The reasons a reader gives a Lambda on-failure record whose error is not one of ours.
REASON_INTERNAL_ERROR = "internal_error"
REASON_LAMBDA_TIMEOUT = "lambda_timeout"
# ... and one Lambda wrote with `condition: EventAgeExceeded` and no function error: the
# event waited in Lambda's queue (throttled) until its maximum age, and never failed.
REASON_EVENT_AGE_EXCEEDED = "event_age_exceeded"
LAMBDA_CONDITION_EVENT_AGE_EXCEEDED = "EventAgeExceeded"
# ... and a message SQS moved from a buffered topology's queue (its redrive policy): the
# EventBridge event unchanged as the body, no attribute of ours, the source queue in the
# `DeadLetterQueueSourceArn` system attribute.
REASON_RECEIVE_COUNT_EXCEEDED = "receive_count_exceeded"
SQS_ATTR_DLQ_SOURCE_ARN = "DeadLetterQueueSourceArn"
# ... and an EventBridge rule-target delivery failure (the ERROR_CODE is its error class).
REASON_DELIVERY_FAILED = "delivery_failed"

# More attributes EventBridge puts on rule-target delivery failures (documented).
DLQ_ATTR_EB_RULE_ARN = "RULE_ARN"
DLQ_ATTR_EB_TARGET_ARN = "TARGET_ARN"
DLQ_ATTR_EB_EXHAUSTED_RETRY_CONDITION = "EXHAUSTED_RETRY_CONDITION"

# Top-level key of an event being replayed: its DLQ history (attempts, first failure), so the
# handler that dead-letters it again keeps both. Never part of the message body it writes.
REPLAY_HISTORY_KEY = "auth0-sync-replay-history"


class RedriveMetric(StrEnum):
    """Metrics of the scheduled redrive, per run (dimension: service)."""

    # Events applied or skipped (buffered topology: sent to their type's queue): their
    # messages deleted.
    REDRIVEN = "Redriven"
    STILL_FAILING = "RedriveStillFailing"  # failed again: a new message replaces the old
    LEFT_FOR_A_PERSON = "LeftForAPerson"  # permanent reason, or transient but too old
    # Seconds since the first failure of the oldest event still in the DLQ after the run
    # (0 when none is left). The queue's own ApproximateAgeOfOldestMessage cannot say it:
    # every run receives every message and re-sends what fails again as a new one.
    OLDEST_FAILURE_AGE = "OldestFailureAge"


class RedriveEnv(StrEnum):
    """Environment of the redrive function (with Env.DLQ_URL, CRM_BASE_URL, ...SECRET_ARN)."""

    SYNC_FUNCTIONS = "SYNC_FUNCTIONS"  # "user.created=fn,user.updated=fn,..."
    # Buffered topology: {"user.created": "<queue url>", ...}, each routed type's queue; the
    # redrive then sends the events it chose there instead of invoking the functions.
    BUFFER_QUEUES = "REDRIVE_BUFFER_QUEUES"
    MAX_AGE_DAYS = "REDRIVE_MAX_AGE_DAYS"
    RATE = "REDRIVE_RATE"


REDRIVE_INTERVAL_MINUTES = 5
REDRIVE_MAX_AGE_DAYS = 4
# CRM calls per second a redrive makes through the handlers (the calls each outcome reports),
# which share their reserved concurrency with live traffic (a throttled invoke ends the run).
REDRIVE_RATE_PER_SECOND = 5.0
CONTEXT_REDRIVE = "redrive"
CONTEXT_REDRIVE_INTERVAL_MINUTES = "redriveIntervalMinutes"
CONTEXT_REDRIVE_MAX_AGE_DAYS = "redriveMaxAgeDays"
# `auth0-sync redrive --stack NAME` invokes the function this output names.
STACK_OUTPUT_REDRIVE_FUNCTION = "RedriveFunction"
