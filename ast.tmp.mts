import { DuckDBInstance } from '@duckdb/node-api';
const db = await DuckDBInstance.create(':memory:');
const c = await db.connect();
const r = await c.runAndReadAll(`SELECT json_serialize_sql('SELECT 1/(1+exp(-(a - b))) * c, -a FROM t')`);
const j = JSON.parse(String(r.getRows()[0][0]));
console.log(JSON.stringify(j.statements[0].node.select_list, null, 0));
const r2 = await c.runAndReadAll(`SELECT exp(1000.0::DOUBLE)`).catch(e=>String(e));
console.log(typeof r2 === 'string' ? r2 : r2.getRows());
