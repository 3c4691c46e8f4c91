from tests.payments.fixtures import ctx, rails, rails_config_file, simulators

__all__ = ["ctx", "rails", "rails_config_file", "simulators"]
