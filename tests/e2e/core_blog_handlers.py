"""Handlers of tasker-core's Python blog workflows for Tasker's SDK: the analytics pipeline
(post 02: three parallel extracts, one transform each, a convergent aggregate, insights) and
the microservices user registration (post 03: account, billing and preferences in parallel,
a welcome sequence over both, activation). The same callables and behaviour, written here."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from tasker_worker.sdk import StepContext, StepHandler, StepResult

# --- data pipeline (post 02) -----------------------------------------------------------

SALES = [  # (order_id, date, product_id, quantity, amount)
    ("ORD-1", "2025-11-02", "PROD-A", 4, 400.0), ("ORD-2", "2025-11-02", "PROD-B", 2, 150.0),
    ("ORD-3", "2025-11-09", "PROD-A", 1, 100.0), ("ORD-4", "2025-11-21", "PROD-C", 6, 900.0),
]
INVENTORY = [  # (product_id, warehouse, on_hand, reorder_point)
    ("PROD-A", "WH-1", 120, 40), ("PROD-B", "WH-1", 20, 25), ("PROD-C", "WH-2", 300, 100),
    ("PROD-A", "WH-2", 10, 40),
]
CUSTOMERS = [  # (customer_id, tier, lifetime_value)
    ("CUST-1", "gold", 12000.0), ("CUST-2", "silver", 3000.0), ("CUST-3", "bronze", 500.0),
]


def _now() -> str:
    return datetime.now(UTC).isoformat()


class _Extract(StepHandler, register=False):
    """A root step reading one simulated source system."""

    source: str
    fields: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def call(self, context: StepContext) -> StepResult:
        records = [dict(zip(self.fields, row, strict=True)) for row in self.rows]
        return self.success({"records": records, "record_count": len(records),
                             "source": self.source, "date_range": context.get_input("date_range"),
                             "extracted_at": _now()})


class ExtractSalesData(_Extract):
    handler_name = "data_pipeline.step_handlers.ExtractSalesDataHandler"
    source, rows = "sales_database", SALES
    fields = ("order_id", "date", "product_id", "quantity", "amount")


class ExtractInventoryData(_Extract):
    handler_name = "data_pipeline.step_handlers.ExtractInventoryDataHandler"
    source, rows = "warehouse_system", INVENTORY
    fields = ("product_id", "warehouse", "quantity_on_hand", "reorder_point")


class ExtractCustomerData(_Extract):
    handler_name = "data_pipeline.step_handlers.ExtractCustomerDataHandler"
    source, rows = "crm", CUSTOMERS
    fields = ("customer_id", "tier", "lifetime_value")


def _missing(handler: StepHandler, context: StepContext, names: list[str]) -> StepResult | None:
    """A permanent failure naming the results among `names` the step was not given."""
    missing = [name for name in names if name not in context.dependency_results]
    if not missing:
        return None
    return handler.failure(f"missing results from {missing}", error_type="dependency_error",
                           retryable=False)


def _group(records: list[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(str(record[key]), []).append(record)
    return groups


class TransformSales(StepHandler):
    handler_name = "data_pipeline.step_handlers.TransformSalesHandler"

    def call(self, context: StepContext) -> StepResult:
        records = context.dependency_result("extract_sales_data")["records"]
        daily = {day: round(sum(r["amount"] for r in rs), 2)
                 for day, rs in _group(records, "date").items()}
        products = {product: sum(r["quantity"] for r in rs)
                    for product, rs in _group(records, "product_id").items()}
        return self.success({"daily_sales": daily, "product_quantities": products,
                             "total_revenue": round(sum(r["amount"] for r in records), 2),
                             "record_count": len(records), "source_step": "extract_sales_data"})


class TransformInventory(StepHandler):
    handler_name = "data_pipeline.step_handlers.TransformInventoryHandler"

    def call(self, context: StepContext) -> StepResult:
        records = context.dependency_result("extract_inventory_data")["records"]
        alerts = sorted({r["product_id"] for r in records
                         if r["quantity_on_hand"] < r["reorder_point"]})
        by_warehouse = {wh: sum(r["quantity_on_hand"] for r in rs)
                        for wh, rs in _group(records, "warehouse").items()}
        return self.success({"warehouse_summary": by_warehouse, "reorder_alerts": alerts,
                             "total_quantity_on_hand": sum(by_warehouse.values()),
                             "record_count": len(records),
                             "source_step": "extract_inventory_data"})


class TransformCustomers(StepHandler):
    handler_name = "data_pipeline.step_handlers.TransformCustomersHandler"

    def call(self, context: StepContext) -> StepResult:
        records = context.dependency_result("extract_customer_data")["records"]
        tiers = {tier: len(rs) for tier, rs in _group(records, "tier").items()}
        return self.success({"tier_counts": tiers, "customer_count": len(records),
                             "total_lifetime_value": sum(r["lifetime_value"] for r in records),
                             "high_value": sum(1 for r in records if r["lifetime_value"] >= 10000),
                             "record_count": len(records),
                             "source_step": "extract_customer_data"})


class AggregateMetrics(StepHandler):
    """The DAG's convergence: needs every transform's result."""

    handler_name = "data_pipeline.step_handlers.AggregateMetricsHandler"

    def call(self, context: StepContext) -> StepResult:
        sources = ["transform_sales", "transform_inventory", "transform_customers"]
        if (failed := _missing(self, context, sources)) is not None:
            return failed
        sales, stock, people = (context.dependency_result(name) for name in sources)
        customers = people["customer_count"]
        return self.success({
            "sources": sources, "sources_aggregated": len(sources),
            "total_revenue": sales["total_revenue"],
            "total_inventory_quantity": stock["total_quantity_on_hand"],
            "inventory_reorder_alerts": len(stock["reorder_alerts"]),
            "total_customers": customers,
            "total_customer_lifetime_value": people["total_lifetime_value"],
            "revenue_per_customer": round(sales["total_revenue"] / customers, 2),
        })


class GenerateInsights(StepHandler):
    handler_name = "data_pipeline.step_handlers.GenerateInsightsHandler"

    def call(self, context: StepContext) -> StepResult:
        metrics = context.dependency_result("aggregate_metrics")
        alerts = metrics["inventory_reorder_alerts"]
        insights = [
            {"category": "Revenue", "metric": metrics["revenue_per_customer"],
             "finding": f"revenue {metrics['total_revenue']} over "
                        f"{metrics['total_customers']} customers"},
            {"category": "Inventory", "metric": alerts,
             "finding": f"{alerts} products need reordering" if alerts
             else "all products above reorder points"},
        ]
        score = 100 - 20 * alerts
        return self.success({"insights": insights, "insights_generated": len(insights),
                             "health_score": {"score": score, "max_score": 100},
                             "pipeline_complete": True, "generated_at": _now()})


# --- microservices user registration (post 03) -----------------------------------------

PLANS: dict[str, dict[str, Any]] = {
    "free": {"price": 0, "billing_required": False, "theme": "light"},
    "pro": {"price": 29.99, "billing_required": True, "theme": "dark"},
    "enterprise": {"price": 299.99, "billing_required": True, "theme": "dark"},
}
EXISTING_USERS = {"existing@example.com": {"id": "user_existing_001", "name": "Existing User",
                                           "plan": "free"}}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class CreateUserAccount(StepHandler):
    """Creates the user; an existing identical user is returned as it is (idempotent)."""

    handler_name = "microservices.step_handlers.CreateUserAccountHandler"

    def call(self, context: StepContext) -> StepResult:
        info = context.get_input_or("user_info", {})
        email, name, plan = info.get("email"), info.get("name"), info.get("plan", "free")
        if not email or not name or not EMAIL.match(email):
            return self.failure("user_info needs a valid email and a name",
                                error_type="validation_error", retryable=False)
        existing = EXISTING_USERS.get(email)
        if existing is not None:
            if (existing["name"], existing["plan"]) != (name, plan):
                return self.failure(f"user {email} exists with other data",
                                    error_type="conflict", retryable=False)
            return self.success({"user_id": existing["id"], "email": email, "plan": plan,
                                 "status": "already_exists", "idempotent": True})
        return self.success({"user_id": f"user_{uuid.uuid4().hex[:12]}", "email": email,
                             "name": name, "plan": plan, "source": info.get("source"),
                             "status": "created", "idempotent": False,
                             "service": "user_service", "created_at": _now()})


class SetupBillingProfile(StepHandler):
    handler_name = "microservices.step_handlers.SetupBillingProfileHandler"

    def call(self, context: StepContext) -> StepResult:
        user_id = context.dependency_field("create_user_account", "user_id")
        plan = context.dependency_field("create_user_account", "plan") or "free"
        tier = PLANS[plan]
        if not tier["billing_required"]:
            return self.success({"user_id": user_id, "plan": plan, "billing_required": False,
                                 "status": "skipped_free_plan", "service": "billing_service"})
        return self.success({"billing_id": f"billing_{uuid.uuid4().hex[:12]}",
                             "user_id": user_id, "plan": plan, "price": tier["price"],
                             "currency": "USD", "billing_required": True, "status": "active",
                             "service": "billing_service"})


class InitializePreferences(StepHandler):
    handler_name = "microservices.step_handlers.InitializePreferencesHandler"

    def call(self, context: StepContext) -> StepResult:
        plan = context.dependency_field("create_user_account", "plan") or "free"
        custom = context.get_input_or("user_info", {}).get("preferences", {})
        prefs = {"email_notifications": True, "theme": PLANS[plan]["theme"], **custom}
        return self.success({"preferences_id": f"prefs_{uuid.uuid4().hex[:12]}",
                             "user_id": context.dependency_field("create_user_account",
                                                                 "user_id"),
                             "plan": plan, "preferences": prefs,
                             "service": "preferences_service"})


class SendWelcomeSequence(StepHandler):
    """Converges over billing and preferences: needs both."""

    handler_name = "microservices.step_handlers.SendWelcomeSequenceHandler"

    def call(self, context: StepContext) -> StepResult:
        needed = ["create_user_account", "setup_billing_profile", "initialize_preferences"]
        if (failed := _missing(self, context, needed)) is not None:
            return failed
        user = context.dependency_result("create_user_account")
        prefs = context.dependency_result("initialize_preferences")["preferences"]
        channels = (["email"] if prefs.get("email_notifications") else []) + ["in_app"]
        if user["plan"] == "enterprise":
            channels.append("sms")
        return self.success({"user_id": user["user_id"], "channels_used": channels,
                             "messages_sent": len(channels), "status": "sent",
                             "service": "notification_service"})


class UpdateUserStatus(StepHandler):
    """Activates the user; reads every upstream service's result (transitive ancestors)."""

    handler_name = "microservices.step_handlers.UpdateUserStatusHandler"

    def call(self, context: StepContext) -> StepResult:
        needed = ["create_user_account", "setup_billing_profile", "initialize_preferences",
                  "send_welcome_sequence"]
        if (failed := _missing(self, context, needed)) is not None:
            return failed
        user = context.dependency_result("create_user_account")
        billing = context.dependency_result("setup_billing_profile")
        return self.success({"user_id": user["user_id"], "status": "active",
                             "plan": user["plan"], "billing_id": billing.get("billing_id"),
                             "services_completed": [context.dependency_result(n)["service"]
                                                    for n in needed],
                             "all_services_coordinated": True, "activated_at": _now()})
