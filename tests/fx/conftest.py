from tests.payments.fixtures import rails, rails_config_file, simulators

__all__ = ["rails", "rails_config_file", "simulators"]
