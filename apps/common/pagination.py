from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination


class IdCursorPagination(CursorPagination):
    """Stable cursor pagination: ids only grow, so pages never skip or repeat rows
    while new ones are inserted (offset pagination would)."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        # A cursor is opaque but forgeable: its position must be an id, or the
        # queryset filter would fail deep inside the database layer.
        if cursor is not None and cursor.position is not None:
            position = str(cursor.position)
            if not (position.isascii() and position.isdigit()) or int(position) > 2**63 - 1:
                raise NotFound(self.invalid_cursor_message)
        return cursor
