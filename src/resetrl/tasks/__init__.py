"""Problems and their rewards: the procedural task with its exact step checker, real-data sources,
the splits every stage reads, and the answer verifiers."""
