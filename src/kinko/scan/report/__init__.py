"""kinko.scan.report."""
