"""What only a framework reaches, for vulture (.ci/run; configured in pyproject.toml).

vulture reads this file as code: each line below "uses" one name. Names frameworks call by
convention (admin options, Meta, DRF hooks, clean_*, ...) are ignored in pyproject.toml instead.
Everything here is reached by Django, DRF, drf-spectacular, Celery or a template, never dead.
"""

from __future__ import annotations

# --- named by dotted path in settings.py (LOGGING, MIDDLEWARE, REST_FRAMEWORK, SPECTACULAR,
# --- ACCOUNT_SIGNUP_FORM_CLASS, GATEWAY_ALERT_* hooks)
JsonFormatter
TextFormatter
RequestIdFilter
RequestIdMiddleware
StrictJSONParser
add_public_api
generator  # drf-spectacular passes the hook's arguments by keyword
public
SignupForm
_.signup  # allauth calls the signup form's signup(request, user)
provider_states_from_usage
list_plan_usage

# --- named by dotted path in gunicorn.conf.py (worker_class); writelines is asyncio's
# --- Transport interface, which the coalescing transport keeps
GatewayUvicornWorker
_.writelines

# --- the logging module's switches (its HOWTO, "Optimization"), read by LogRecord
_.logThreads
_.logProcesses
_.logMultiprocessing
_._srcfile

# --- drf-spectacular extensions: registered by subclassing, called with auto_schema
BearerTokenScheme
BearerChallengeScheme
auto_schema

# --- model fields: columns written through the ORM (keyword arguments, update_fields) and read
# --- by templates, the admin, SQL aggregates and the API
is_staff
date_joined
requested_model
tokens_estimated
usage_anomaly
reported_usage
client_disconnected
updated_at
last_seen_at
notified_at
recovery_notified_at
received_at
written_at
_.written_at
price_per_month
overage_price_per_1k_tokens
sort_order
current_period_start
current_period_end
cancel_at_period_end
downgraded_at
state_as_of
processed_at
reported_at
_.reported_at
synced_at
_.current_period_start
_.current_period_end
_.cancel_at_period_end
_.state_as_of
_.downgraded_at
_.updated_at
_.traceback  # dj-stripe's WebhookEventTrigger columns
_.processed
cache_enabled
cache_ttl_seconds
rate_limit_per_minute
rate_limit_per_hour
rate_limit_per_day
BILL  # a TextChoices value stored in Plan.overage

# --- form and serializer fields: declared for Django forms / DRF, read by them
organization_name
access
token_type
expires_in
expires_on
_.disabled  # Field.disabled, set on bound form fields for read-only roles
is_anonymous  # DRF reads these on request.user
output_field  # Django expressions

# --- read by templates
_.success_rate
_.cache_hit_rate
_.model_names

# --- framework call signatures: arguments the caller passes whether used or not
model_admin  # SimpleListFilter.lookups(request, model_admin)
rest  # the catch-all URL pattern's captured path
duration_ms  # CheckResult is serialised whole (asdict) for the health endpoint
_.prec  # decimal.localcontext() precision, read by the decimal module

# --- test seams: the one place tests swap a dialect for a fake or reset process state
register_dialect
clear_embedded_redis
stop_usage_flusher

# --- Celery reads its configuration attributes
task_annotations

# --- redis-py calls a connection's pack_command for every command it sends
_.pack_command
