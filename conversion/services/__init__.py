"""What each step does with data: plain functions over models, called by views and tasks."""
