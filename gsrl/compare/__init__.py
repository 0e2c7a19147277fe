"""`gsrl compare`: meta-learning algorithms × seeds on one few-shot benchmark, as one table."""
