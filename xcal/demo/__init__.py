"""The offline mini-experiment behind ``make demo`` (see README, "The experiment")."""
