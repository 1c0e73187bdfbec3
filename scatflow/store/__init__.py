"""The store: the Zarr layout, its ledger, reading it and keeping writers apart.

Owns every write to a store (``writer`` for station groups, ledgers and runs;
``analysis_writer`` for analysis groups; ``relay`` for re-laying a group along
``channel``), the ledger rule (``ledger``), the reading API (``reader``), the
writer lock (``lock``) and the labeled dataset schema (``dataset``). It may
import the scattering network and inputs; never the workflow or analysis.
"""
