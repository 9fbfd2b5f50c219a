"""`pipewarden report`: aggregation by team and org, the run, and its history."""
