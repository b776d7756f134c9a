"""Study reports: ``report_build`` reads the database once and returns a JSON-ready dict holding
every number the report shows; the renderers (HTML, PDF, CSV, JSON) are functions of that dict."""
