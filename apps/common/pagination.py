from rest_framework.pagination import CursorPagination


class IdCursorPagination(CursorPagination):
    """Stable cursor pagination: ids only grow, so pages never skip or repeat rows
    while new ones are inserted (offset pagination would)."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
