"""Pure domain: specs, status machines, validation, errors. No I/O, no clock reads."""
