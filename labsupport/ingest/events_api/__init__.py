"""The lab's "external" REST API: deterministic events per time window, with fault
switches a notebook flips over HTTP. ``create_app()`` builds one independent app
(own state, own metrics registry), so tests can run many side by side."""
