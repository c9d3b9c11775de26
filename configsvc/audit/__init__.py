"""Reading the audit trail: filtered, paginated queries and compliance exports."""
