"""The Ray layer: the one Ray session, evaluate+resample as Ray tasks, captions on Ray Data, training on Ray Train."""
