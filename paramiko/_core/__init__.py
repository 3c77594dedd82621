"""Sans-IO protocol machinery (no sockets, threads or clocks) under the threaded public API."""
