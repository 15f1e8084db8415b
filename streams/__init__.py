"""Stream processing: Kinesis batches in, match state, leaderboards and pushes out."""
