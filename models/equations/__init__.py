"""Published clinical equations implemented behind the `Model` interface."""
