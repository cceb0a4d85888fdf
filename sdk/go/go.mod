module vecron.local/sdk

go 1.24
