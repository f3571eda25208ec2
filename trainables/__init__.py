"""One trial: data, models, loops, the baseline cache and measurement. No Ray in here."""
