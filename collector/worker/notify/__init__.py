"""Notification channels: email (SMTP), SMS (Twilio REST), outgoing webhooks."""

from collector.worker.notify.base import Channel, Delivery, Message, Notifier

__all__ = ["Channel", "Delivery", "Message", "Notifier"]
