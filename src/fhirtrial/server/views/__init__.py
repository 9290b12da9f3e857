"""One blueprint per URL area: ``metadata`` (the CapabilityStatement), ``system`` (base URL:
batch/transaction, landing page), ``resources`` (type and instance interactions)."""
