"""Handlers of tasker-core's Python resolver tests for Tasker's SDK: one class with several
entry points (a template's `handler.method` picks `validate`, `process` or `refund`; none
means `call`), and the linear mathematical sequence its backward-compatibility test runs
(templates without `method`/`resolver`)."""

from __future__ import annotations

from typing import Any

from tasker_worker.sdk import StepContext, StepHandler, StepResult


class MultiMethodHandler(StepHandler):
    """Each entry point reports itself as `invoked_method`."""

    handler_name = "resolver_tests.step_handlers.MultiMethodHandler"

    def _answer(self, context: StepContext, method: str, **fields: Any) -> StepResult:
        expected = context.get_config("expected_method")
        if expected != method:  # the template said which method it meant to reach
            return self.failure(f"{method} invoked where the template expects {expected}",
                                error_type="method_dispatch_error", retryable=False)
        return self.success({"invoked_method": method, "handler": "MultiMethodHandler",
                             "step_number": context.get_config("step_number"),
                             "step_uuid": context.step_uuid, **fields})

    def call(self, context: StepContext) -> StepResult:
        return self._answer(context, "call", input_received=context.get_input_or("data", {}))

    def validate(self, context: StepContext) -> StepResult:
        data = context.get_input_or("data", {})
        if "amount" not in data:
            return self.failure('Validation failed: missing required field "amount"',
                                error_type="validation_error", retryable=False)
        return self._answer(context, "validate", validated=True, input_validated=data)

    def process(self, context: StepContext) -> StepResult:
        amount = context.get_input_or("data", {}).get("amount", 0)
        processed = round(amount * 1.1, 2)
        return self._answer(context, "process", original_amount=amount,
                            processed_amount=processed,
                            processing_fee=round(processed - amount, 2))

    def refund(self, context: StepContext) -> StepResult:
        data = context.get_input_or("data", {})
        return self._answer(context, "refund", refund_amount=data.get("amount", 0),
                            refund_reason=data.get("reason", "not_specified"))


# --- linear mathematical sequence: n -> n**2 -> +10 -> *3 -> /2 ----------------------------


class _LinearStep(StepHandler, register=False):
    previous: str | None = None

    def apply(self, value: float, context: StepContext) -> float:
        raise NotImplementedError

    def call(self, context: StepContext) -> StepResult:
        if self.previous is None:
            value = context.get_input("even_number")
            if not isinstance(value, int) or value % 2:
                return self.failure(f"even_number must be an even integer, got: {value}",
                                    error_type="validation_error", retryable=False)
        else:
            value = context.dependency_result(self.previous)["result"]
        return self.success({"result": self.apply(value, context),
                             "operation": context.get_config("operation")})


class LinearStep1(_LinearStep):
    handler_name = "linear_workflow.step_handlers.LinearStep1Handler"

    def apply(self, value: float, context: StepContext) -> float:
        return value * value


class LinearStep2(_LinearStep):
    handler_name = "linear_workflow.step_handlers.LinearStep2Handler"
    previous = "linear_step_1_py"

    def apply(self, value: float, context: StepContext) -> float:
        return value + int(context.get_config("constant"))


class LinearStep3(_LinearStep):
    handler_name = "linear_workflow.step_handlers.LinearStep3Handler"
    previous = "linear_step_2_py"

    def apply(self, value: float, context: StepContext) -> float:
        return value * int(context.get_config("factor"))


class LinearStep4(_LinearStep):
    handler_name = "linear_workflow.step_handlers.LinearStep4Handler"
    previous = "linear_step_3_py"

    def apply(self, value: float, context: StepContext) -> float:
        return value / int(context.get_config("divisor"))
