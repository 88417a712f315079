"""Training the models from the store, as a nightly, incremental scheduler job."""
