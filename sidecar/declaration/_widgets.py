"""`[[widgets]]`: blocks a merchant places in emails, popups or dashboards (PROTOCOL §2).

Widgets pass through to the manifest; the sidecar only checks what ShopiMind would
otherwise refuse or silently misrender: known targets and field types, `render_mode`
on html widgets only, and `visible_when` naming a field of the same widget.
"""

from __future__ import annotations

from typing import Final, get_args

from sidecar.declaration._common import LOCALIZED, NONBLANK, SELECT_OPTIONS, URL
from sidecar.declaration._compound import ArrayOf
from sidecar.declaration._context import Context, Loc, did_you_mean, listing, shown
from sidecar.declaration._nodes import Boolean, Choice, Integer, Json, JsonObject
from sidecar.declaration._record import Key, Record, Rule
from sidecar.declaration.model import (
    Widget,
    WidgetConfigField,
    WidgetConfigSchema,
    WidgetFieldType,
    WidgetTarget,
    WidgetVisibility,
)

__all__ = ["WIDGETS", "WIDGET_FIELD_TYPES", "WIDGET_TARGETS"]

WIDGET_TARGETS: Final[tuple[str, ...]] = get_args(WidgetTarget)
WIDGET_FIELD_TYPES: Final[tuple[str, ...]] = get_args(WidgetFieldType)


def _check_options(field: WidgetConfigField, at: Loc, ctx: Context) -> None:
    if field.options and field.type != "select":
        ctx.problem(
            (*at, "options"),
            f"only select fields take `options`; this field's type is {shown(field.type)}",
        )


VISIBILITY: Final = Record[WidgetVisibility](
    name="WidgetVisibility",
    description="Show the field only while another field of the widget has one of the values.",
    build=WidgetVisibility,
    keys=(
        Key(
            name="field",
            node=NONBLANK,
            required=True,
            description="The key of another field of the same widget.",
        ),
        Key(
            name="in",
            attr="values",
            node=ArrayOf(item=Json(), min_items=1),
            required=True,
            description="The values of that field for which this one is shown.",
        ),
    ),
)

WIDGET_FIELD: Final = Record[WidgetConfigField](
    name="WidgetConfigField",
    description="One setting of a widget.",
    build=WidgetConfigField,
    rules=(Rule(check=_check_options, uses=("type", "options")),),
    keys=(
        Key(name="key", node=NONBLANK, required=True, description="Unique within the widget."),
        Key(
            name="type",
            node=Choice(values=WIDGET_FIELD_TYPES),
            required=True,
            description="The input: " + ", ".join(WIDGET_FIELD_TYPES) + ".",
        ),
        Key(name="label", node=LOCALIZED, description="What the merchant sees."),
        Key(name="default", node=Json(), description="The initial value."),
        Key(
            name="options",
            node=SELECT_OPTIONS,
            description="Choices of a select field.",
        ),
        Key(
            name="supports_variables",
            node=Boolean(),
            description="The value may hold ShopiMind variables.",
        ),
        Key(name="translatable", node=Boolean(), description="One value per language."),
        Key(name="preview_value", node=Json(), description="The value used in previews."),
        Key(name="strip_hash", node=Boolean(), description="Colors: send them without '#'."),
        Key(name="visible_when", node=VISIBILITY, description="Show it only in some cases."),
        Key(
            name="refresh_fields",
            node=ArrayOf(item=NONBLANK, unique_by=lambda key: key),
            description="Fields to refresh when this one changes.",
        ),
    ),
)


def _check_visibility(schema: WidgetConfigSchema, at: Loc, ctx: Context) -> None:
    """`visible_when` names another field of the same widget."""
    keys = [field.key for field in schema.fields]
    for i, field in enumerate(schema.fields):
        if field.visible_when is None:
            continue
        target = field.visible_when.field
        where = (*at, "fields", i, "visible_when", "field")
        if target == field.key:
            ctx.problem(where, "a field cannot be shown depending on itself")
        elif target not in keys:
            others = [key for key in keys if key != field.key]
            hint = did_you_mean(target, others) or (
                f"; its other fields are {listing(others)}"
                if others
                else "; this widget has no other field"
            )
            ctx.problem(
                where,
                f"no field {shown(target)} in this widget; visible_when must name a field of "
                f"the same widget{hint}",
            )


WIDGET_CONFIG: Final = Record[WidgetConfigSchema](
    name="WidgetConfigSchema",
    description="The widget's settings.",
    build=WidgetConfigSchema,
    rules=(Rule(check=_check_visibility, uses=("fields",)),),
    keys=(
        Key(
            name="fields",
            node=ArrayOf(
                item=WIDGET_FIELD,
                unique_by=lambda field: field.key,
                unique_key="key",
                unique_what="field key",
            ),
            description="The settings, in order.",
        ),
        Key(
            name="groups",
            node=ArrayOf(item=JsonObject()),
            description="Groups of settings, passed to ShopiMind as given.",
        ),
        Key(
            name="style_groups",
            node=ArrayOf(item=JsonObject()),
            description="Style groups, passed to ShopiMind as given.",
        ),
    ),
)


def _check_render_mode(widget: Widget, at: Loc, ctx: Context) -> None:
    if widget.render_mode is not None and widget.render_type != "html":
        ctx.problem(
            (*at, "render_mode"),
            f"only html widgets have a render_mode; this widget's render_type is "
            f"{shown(widget.render_type)}",
        )


_TEXT = NONBLANK
WIDGET: Final = Record[Widget](
    name="Widget",
    description="A block the merchant can place in emails, popups, smart content or dashboards.",
    build=Widget,
    rules=(Rule(check=_check_render_mode, uses=("render_type", "render_mode")),),
    keys=(
        Key(name="key", node=NONBLANK, required=True, description="Unique among the widgets."),
        Key(name="name", node=LOCALIZED, required=True, description="What the merchant sees."),
        Key(name="description", node=LOCALIZED, description="A short explanation."),
        Key(name="icon_url", node=URL, description="Its icon."),
        Key(name="preview_image_url", node=URL, description="A preview image."),
        Key(
            name="targets",
            node=ArrayOf(item=Choice(values=WIDGET_TARGETS), unique_by=lambda target: target),
            description="Where it can be placed: " + ", ".join(WIDGET_TARGETS) + ".",
        ),
        Key(
            name="render_type",
            node=Choice(values=("image", "html")),
            description="'image' (an image URL) or 'html'.",
        ),
        Key(
            name="render_mode",
            node=Choice(values=("static", "dynamic")),
            description="html widgets only: 'static' or 'dynamic'.",
        ),
        Key(name="image_url_template", node=_TEXT, description="The image URL template."),
        Key(name="html_template", node=_TEXT, description="The HTML template."),
        Key(name="css_template", node=_TEXT, description="The CSS template."),
        Key(name="renderer_key", node=_TEXT, description="A ShopiMind renderer."),
        Key(name="default_width", node=Integer(minimum=1), description="Width in pixels."),
        Key(name="config_schema", node=WIDGET_CONFIG, description="The widget's settings."),
    ),
)

WIDGETS: Final = ArrayOf(
    item=WIDGET, unique_by=lambda widget: widget.key, unique_key="key", unique_what="widget key"
)
