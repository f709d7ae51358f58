"""Regions: many tiles to one map, and the answers asked of maps.

Finding DARTS tile folders and reading their dates (tiles, darts_ids), processing each tile
alone (tiles) in this process or in workers (workers), merging the tiles' objects into one
map (merge, process_tiles), evaluating against reference slumps (evaluate) and comparing years
(compare_years). Imports: every package of the core below it.
"""
