#!/usr/bin/env node
// Validates CloudFormation templates offline with @aws/cloudformation-validate
// (bundled resource schemas + cfn-lint rules, no AWS calls).
//
// usage: node validate.js [--json] TEMPLATE...
// Every diagnostic at INFO or above fails the run (strict: warnings are
// errors); a finding that is really wanted is excluded below with a reason.
// With --json each template's report is printed as one JSON line
// {"file", "status", "diagnostics": [...]} for internal/deploycheck.
'use strict';

const path = require('path');

const modDir = process.env.CFN_VALIDATE_MODULES;
if (!modDir) {
    console.error('CFN_VALIDATE_MODULES is not set (run deploy/ecs/validate-template.sh)');
    process.exit(2);
}
const cfv = require(path.join(modDir, '@aws/cloudformation-validate'));

// Findings switched off on purpose, by rule id. Keep this list short and
// say why; everything else fails.
const EXCLUDE = [
    {
        id: 'I9001',
        why: 'create-only properties: table, topic, cluster and alarm names are fixed by the fleet contract, so a rename is meant to replace',
    },
];

let args = process.argv.slice(2);
const json = args[0] === '--json';
if (json) args = args.slice(1);
const files = args;
if (files.length === 0) {
    console.error('usage: validate.js TEMPLATE...');
    process.exit(2);
}

const engine = new cfv.RegoEngine();
let total = 0;
let failed = false;
try {
    for (const f of files) {
        const report = engine.validateStandard(new cfv.TemplateFile(f), {
            severityLevel: 'INFO',
            strict: true,
            exclude: { ids: EXCLUDE.map((e) => e.id) },
        });
        if (report.status !== 'OK') failed = true;
        total += report.diagnostics.length;
        if (json) {
            const diagnostics = report.diagnostics.map((d) => ({
                ruleId: d.ruleId,
                severity: d.severity,
                message: d.message,
                logicalId: d.entity ? d.entity.logicalId : '',
                propertyPath: d.propertyPath || '',
                line: d.startLine || 0,
            }));
            console.log(JSON.stringify({ file: f, status: report.status, version: cfv.version(), diagnostics }));
            continue;
        }
        if (report.status !== 'OK') console.log(`${f}: validation status ${report.status}`);
        for (const d of report.diagnostics) {
            const where = d.entity ? `${d.entity.logicalId}${d.propertyPath ? '.' + d.propertyPath : ''}` : d.propertyPath || '';
            console.log(`${f}:${d.startLine ?? 0}:${d.startColumn ?? 0}: [${d.severity}] ${d.ruleId} ${where}: ${d.message}`);
        }
    }
} finally {
    engine.free();
}
if (!json) console.log(`${files.length} template(s), ${total} finding(s), @aws/cloudformation-validate ${cfv.version()}`);
process.exit(failed || total > 0 ? 1 : 0);
