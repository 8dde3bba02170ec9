"""Airflow knowledge, as data. The bridge's core never imports this package."""
