"""Switchboard's admin GUI and REST API (Flask + Flask-Admin). Its views arrive with
the engine service and change-control issues; today the package only reserves the name."""
