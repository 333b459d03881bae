-- The tables and views of the warehouse's main schema: every dashboard section reads only the ones present.
select table_name
from information_schema.tables
where table_catalog = current_database() and table_schema = 'main'
