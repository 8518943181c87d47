"""Stand-alone consumer loops run as child processes, each printing one JSON line of figures."""
