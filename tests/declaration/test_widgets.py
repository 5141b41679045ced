"""`[[widgets]]`: keys, targets, render mode, field types, `visible_when`."""

from __future__ import annotations

from sidecar.declaration.model import WidgetVisibility
from tests.declaration.helpers import declare, only_problem, reasons

WIDGET = """
[[widgets]]
key = "badge"
name = "Badge"
targets = ["email_template"]
"""


def test_a_widget_reads_into_the_model() -> None:
    declaration = declare(
        WIDGET
        + """
        html_template = "<b>{{points}}</b>"
        render_mode = "static"

        [[widgets.config_schema.fields]]
        key = "style"
        type = "select"
        options = [{ value = "badge", label = "Badge" }, { value = "banner", label = "Banner" }]

        [[widgets.config_schema.fields]]
        key = "color"
        type = "color"
        visible_when = { field = "style", in = ["banner"] }
        """
    )
    widget = declaration.widgets[0]
    assert widget.render_type == "html"
    assert widget.render_mode == "static"
    fields = widget.config_schema.fields
    assert fields[1].visible_when == WidgetVisibility(field="style", values=("banner",))


def test_widget_keys_are_those_of_the_model() -> None:
    problem = only_problem(WIDGET + 'colour = "red"\n')
    assert problem.path == "widgets[0].colour"
    assert problem.reason.startswith("unknown key 'colour'; expected one of key, name,")


def test_a_widget_needs_a_key_and_a_name() -> None:
    found = reasons("[[widgets]]\ntargets = []\n")
    assert set(found) == {"widgets[0].key", "widgets[0].name"}


def test_targets_come_from_the_allowed_list() -> None:
    problem = only_problem(WIDGET.replace('["email_template"]', '["popup", "sms"]'))
    assert problem.path == "widgets[0].targets[1]"
    assert problem.reason == (
        "unknown value 'sms'; expected one of email_template, popup, smart_content, stats_dashboard"
    )


def test_render_mode_is_for_html_widgets_only() -> None:
    problem = only_problem(WIDGET + 'render_type = "image"\nrender_mode = "dynamic"\n')
    assert problem.path == "widgets[0].render_mode"
    assert problem.reason.startswith("only html widgets have a render_mode")


def test_widget_field_types_come_from_the_allowed_list() -> None:
    problem = only_problem(
        WIDGET + '[[widgets.config_schema.fields]]\nkey = "a"\ntype = "password"\n'
    )
    assert problem.path == "widgets[0].config_schema.fields[0].type"
    assert problem.reason.startswith("unknown value 'password'; expected one of text, number,")


def test_only_select_widget_fields_take_options() -> None:
    problem = only_problem(
        WIDGET + '[[widgets.config_schema.fields]]\nkey = "a"\ntype = "text"\n'
        'options = [{ value = "x", label = "X" }]\n'
    )
    assert problem.path == "widgets[0].config_schema.fields[0].options"
    assert "only select fields take `options`" in problem.reason


def test_visible_when_is_field_and_in() -> None:
    found = reasons(
        WIDGET + '[[widgets.config_schema.fields]]\nkey = "a"\ntype = "text"\n'
        '[[widgets.config_schema.fields]]\nkey = "b"\ntype = "text"\n'
        'visible_when = { field = "a", values = ["x"] }\n'
    )
    base = "widgets[0].config_schema.fields[1].visible_when"
    assert set(found) == {f"{base}.values", f"{base}.in"}
    assert "missing required key" in found[f"{base}.in"]


def test_visible_when_names_a_field_of_the_same_widget() -> None:
    problem = only_problem(
        WIDGET
        + """
        [[widgets.config_schema.fields]]
        key = "style"
        type = "text"

        [[widgets.config_schema.fields]]
        key = "color"
        type = "color"
        visible_when = { field = "styl", in = ["banner"] }

        """
    )
    assert problem.path == "widgets[0].config_schema.fields[1].visible_when.field"
    assert problem.reason.startswith("no field 'styl' in this widget")
    assert "did you mean 'style'?" in problem.reason


def test_visible_when_cannot_name_a_field_of_another_widget() -> None:
    found = reasons(
        WIDGET
        + """
        [[widgets.config_schema.fields]]
        key = "style"
        type = "text"

        [[widgets]]
        key = "other"
        name = "Other"

        [[widgets.config_schema.fields]]
        key = "size"
        type = "number"
        visible_when = { field = "style", in = [1] }
        """
    )
    reason = found["widgets[1].config_schema.fields[0].visible_when.field"]
    assert reason == (
        "no field 'style' in this widget; visible_when must name a field of the same widget; "
        "this widget has no other field"
    )


def test_a_field_cannot_be_visible_depending_on_itself() -> None:
    problem = only_problem(
        WIDGET + '[[widgets.config_schema.fields]]\nkey = "a"\ntype = "checkbox"\n'
        'visible_when = { field = "a", in = [true] }\n'
    )
    assert problem.reason == "a field cannot be shown depending on itself"


def test_widget_keys_are_unique() -> None:
    problem = only_problem(WIDGET + WIDGET)
    assert problem.path == "widgets[1].key"
    assert "widget key 'badge' is declared twice (first at widgets[0])" in problem.reason


def test_widget_field_keys_are_unique() -> None:
    field = '[[widgets.config_schema.fields]]\nkey = "a"\ntype = "text"\n'
    problem = only_problem(WIDGET + field + field)
    assert problem.path == "widgets[0].config_schema.fields[1].key"
    assert "declared twice" in problem.reason
