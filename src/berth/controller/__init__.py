"""Level-triggered controller: read desired and observed state, plan, act, repeat."""
