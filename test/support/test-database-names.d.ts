export declare function serverUrl(): string;
export declare const TEST_DATABASE_PREFIX: string;
export declare function databaseUrl(name: string): string;
export declare function uniqueDatabaseName(purpose?: string): string;
