export declare const SERVER_URL: string;
export declare const TEST_DATABASE_PREFIX: string;
export declare function databaseUrl(name: string): string;
export declare function uniqueDatabaseName(purpose?: string): string;
