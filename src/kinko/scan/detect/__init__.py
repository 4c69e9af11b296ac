"""kinko.scan.detect."""
