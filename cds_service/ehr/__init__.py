"""What an EHR does, shared by the simulator (`cds_service.ui.simulator_views`) and the command line
(`cds_service.cli`): one implementation of each, so that both send the same requests.

- `patients`: a patient as the EHR knows them (`Patient`), Bundles made server-like (`localize`),
  and the bundled demo patients (`DemoPatients`).
- `drafts`: the draft orders an EHR's order entry offers.
- `contexts`: the context of each of the six hooks (`build_context`).
- `hook_calls`: prefetch answered from the patient's own resources and the request body.
- `fhir_query`: the in-memory FHIR search that answers a rendered prefetch template.
- `signing`: JWTs signed as an EHR signs them, with a given key or the bundled demo key.

Nothing here imports `cds_service.ui` or Flask; errors in what a caller passed are `EhrInputError`.
"""
