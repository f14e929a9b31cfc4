"""Thin views: find the object the user may see, call the workflow or a service, render."""
