from django.db import models


class StreamEvent(models.Model):
    """One published event, kept so a client that missed it can fetch it by sequence number."""

    seq = models.PositiveBigIntegerField(unique=True)
    type = models.CharField(max_length=32)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"{self.type} #{self.seq}"

    def as_message(self) -> dict:
        """Return the event as clients receive it on the socket."""
        return {"type": self.type, "seq": self.seq, "data": self.data}
