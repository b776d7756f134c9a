"""``user|reviews``: whether the navigation offers the review queue to this user."""

from django import template

from evalhub.roles import is_manager, is_reviewer

register = template.Library()


@register.filter
def reviews(user) -> bool:
    return is_manager(user) or is_reviewer(user)
